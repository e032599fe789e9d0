import org.junit.Test;
import static io.restassured.RestAssured.given;

public class AdminApiTest {
    @Test
    public void readsAuditLog() {
        given()
            .auth().basic("svc:audit", "not-a-real-password")
        .when()
            .get("https://api.example.com/admin/audit")
        .then()
            .statusCode(200);
    }
}
