# The record the browser journey opens (sourced by test.sh): write_browser_record NHS writes, through
# the provider API (`provider_put PATH JSON`, the caller's), a citizen registered with the GP practice
# A81001 and what their care team shares: a problem, a medicine, an allergy, an appointment and a care
# plan, each recorded by a named professional. Test data: NHS numbers of the 999 test range.
write_browser_record() {
  local nhs=$1 subject='"subject":{"reference":"Patient/'$1'"}'
  provider_put "Patient/$nhs" '{"resourceType":"Patient","id":"'$nhs'","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"'$nhs'"}],"name":[{"given":["Tom"],"family":"Jones"}],"birthDate":"1948-03-02","generalPractitioner":[{"reference":"Organization/A81001"}]}'
  provider_put "Condition/browser-$nhs" '{"resourceType":"Condition","id":"browser-'$nhs'","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006","display":"Type 2 diabetes"}],"text":"Type 2 diabetes"},'"$subject"',"recordedDate":"2021-05-04","recorder":{"display":"Dr Asha Patel, GP"}}'
  provider_put "MedicationRequest/browser-$nhs" '{"resourceType":"MedicationRequest","id":"browser-'$nhs'","status":"active","intent":"order","medicationCodeableConcept":{"text":"Metformin 500 mg tablets, one twice a day"},'"$subject"',"authoredOn":"2024-09-12","requester":{"display":"Dr Asha Patel, GP"}}'
  provider_put "AllergyIntolerance/browser-$nhs" '{"resourceType":"AllergyIntolerance","id":"browser-'$nhs'","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},"code":{"text":"Penicillin"},"patient":{"reference":"Patient/'$nhs'"},"recordedDate":"2019-01-20","recorder":{"display":"Nurse Jo Smith"}}'
  provider_put "Appointment/browser-$nhs" '{"resourceType":"Appointment","id":"browser-'$nhs'","status":"booked","description":"Diabetes review","start":"2027-01-14T10:30:00Z","end":"2027-01-14T10:50:00Z","participant":[{"actor":{"reference":"Patient/'$nhs'"},"status":"accepted"}]}'
  provider_put "CarePlan/browser-$nhs" '{"resourceType":"CarePlan","id":"browser-'$nhs'","status":"active","intent":"plan","title":"Diabetes care plan","description":"Check blood sugar weekly; foot check every year","'"${subject:1}"',"period":{"start":"2024-09-12"},"author":{"display":"Dr Asha Patel, GP"}}'
}
